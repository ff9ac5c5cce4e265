//! What a live QEMU says about its device types, for `device_add`: the drivers
//! (`qom-list-types` with `implements: device`, abstract types left out) and a driver's
//! properties (`device-list-properties`). [`Schema::with_devices`](crate::Schema::with_devices)
//! folds them into the schema, so `device_add`'s arguments complete, show and validate
//! like any command's.

use serde::Deserialize;
use serde_json::{json, Value};

/// The command listing the device drivers.
pub const LIST_TYPES: &str = "qom-list-types";
/// The command listing a driver's properties.
pub const LIST_PROPERTIES: &str = "device-list-properties";

/// `qom-list-types`' arguments: the device types one can create (not abstract ones).
pub fn list_types_args() -> Value {
    json!({"implements": "device", "abstract": false})
}

/// `device-list-properties`' arguments for `driver`.
pub fn list_properties_args(driver: &str) -> Value {
    json!({ "typename": driver })
}

#[derive(Deserialize)]
struct TypeInfo {
    name: String,
}

/// The driver names of a `qom-list-types` reply, sorted.
pub fn drivers(reply: &Value) -> Result<Vec<String>, String> {
    let types = Vec::<TypeInfo>::deserialize(reply).map_err(|e| e.to_string())?;
    let mut names: Vec<String> = types.into_iter().map(|t| t.name).collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// One property of a device type, as `device-list-properties` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeviceProperty {
    pub name: String,
    /// QOM's type name: `str`, `bool`, `uint32`, `OnOffAuto`, `link<...>`, ...
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// The properties of a `device-list-properties` reply.
pub fn properties(reply: &Value) -> Result<Vec<DeviceProperty>, String> {
    Vec::<DeviceProperty>::deserialize(reply).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::schema::{ProblemKind, TypeNode};
    use crate::Schema;

    fn schema() -> Schema {
        Schema::parse(include_str!("../tests/data/qemu-7.2-schema.json")).unwrap()
    }

    /// As QEMU 7.2 answers, shortened.
    fn live() -> (Vec<String>, BTreeMap<String, Vec<DeviceProperty>>) {
        let types = json!([{"name": "virtio-net-pci", "parent": "virtio-pci"}, {"name": "e1000", "parent": "pci-device"}]);
        let props = json!([
            {"name": "netdev", "type": "str", "description": "ID of a netdev to use as a backend"},
            {"name": "mac", "type": "str", "description": "Ethernet 6-byte MAC Address, example: 52:54:00:12:34:56"},
            {"name": "mq", "type": "bool", "description": "on/off", "default-value": false},
            {"name": "addr", "type": "int32", "default-value": -1},
            {"name": "vectors", "type": "uint32"}
        ]);
        let mut known = BTreeMap::new();
        known.insert("virtio-net-pci".to_owned(), properties(&props).unwrap());
        (drivers(&types).unwrap(), known)
    }

    #[test]
    fn replies_are_read() {
        let (drivers, known) = live();
        assert_eq!(drivers, ["e1000", "virtio-net-pci"], "sorted");
        let netdev = &known["virtio-net-pci"][0];
        assert_eq!(
            (netdev.name.as_str(), netdev.ty.as_str()),
            ("netdev", "str")
        );
        assert!(super::drivers(&json!({"x": 1})).is_err());
        assert!(properties(&json!([{"name": 1}])).is_err());
        assert_eq!(list_types_args()["implements"], "device");
        assert_eq!(list_properties_args("e1000"), json!({"typename": "e1000"}));
    }

    #[test]
    fn device_add_takes_a_drivers_own_properties() {
        let (drivers, known) = live();
        let s = schema().with_devices(&drivers, &known);
        let v = |args: Value| s.validate("device_add", Some(&args)).unwrap();
        // the NIC with its backend and address: no problems
        assert!(v(json!({"driver": "virtio-net-pci", "netdev": "n1", "mac": "52:54:00:12:34:56", "id": "nic1", "addr": "06.0"})).is_empty());
        // a property the driver has not, a wrong type, an unknown driver
        let p = v(json!({"driver": "virtio-net-pci", "netdevv": "n1", "mq": "on"}));
        let p: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert_eq!(
            p,
            [
                "$.mq: expected bool, found str",
                "$.netdevv: unknown member"
            ]
        );
        let p = v(json!({"driver": "virtio-net-pcx"}));
        assert!(
            matches!(&p[0].kind, ProblemKind::NotInEnum { value, .. } if value == "virtio-net-pcx")
        );
        // a driver whose properties are not known yet: its own members only
        assert_eq!(
            v(json!({"driver": "e1000", "mac": "x"}))[0].to_string(),
            "$.mac: unknown member"
        );
        // shown and completed like the schema's own members
        let ty = s.argument_type("device_add").unwrap();
        let args = json!({"driver": "virtio-net-pci"});
        let names: Vec<&str> = ty
            .members_for(Some(&args))
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["driver", "bus", "id", "netdev", "mac", "mq", "addr", "vectors"]
        );
        let mac = ty.members_for(Some(&args))[4];
        assert_eq!(
            mac.description.as_deref(),
            Some("str: Ethernet 6-byte MAC Address, example: 52:54:00:12:34:56")
        );
        assert_eq!(
            s.type_at("device_add", &["driver".to_owned()], None)
                .as_ref()
                .and_then(TypeNode::enum_values),
            Some(&drivers[..])
        );
        assert_eq!(s.template("device_add").unwrap(), json!({"driver": ""}));
        // without the live answers, the schema as QEMU gave it
        assert_eq!(schema().with_devices(&[], &known), schema());
    }
}
