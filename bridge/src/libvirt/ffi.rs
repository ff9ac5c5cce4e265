//! The two libvirt event registrations the `virt` crate (0.5) does not wrap, as a small
//! documented wrapper over `virt-sys`:
//!
//! - QEMU monitor events, `virConnectDomainQemuMonitorEventRegister` (libvirt-qemu): every
//!   QMP event of every domain on the connection, with its name, timestamp and data;
//! - domain lifecycle events, `virConnectDomainEventRegisterAny` with
//!   `VIR_DOMAIN_EVENT_ID_LIFECYCLE`: defined, undefined, started, suspended, resumed,
//!   stopped, shut down, crashed.
//!
//! Each registration hands libvirt a boxed Rust closure as its `opaque` pointer and a free
//! callback that drops it; libvirt calls the closure on the thread running its event loop
//! ([`run_event_loop`]) and frees it when the registration ends (deregistration or the
//! connection's close). The closures only copy what they are given into owned Rust values
//! and pass them on. This is the only module of the workspace allowed `unsafe`.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_longlong, c_uint, c_void, CStr};
use std::ptr;

use virt::connect::Connect;
use virt::error::Error;

/// One QMP event of a domain, as libvirt relays it.
#[derive(Debug, Clone)]
pub struct QemuEvent {
    pub domain: String,
    pub name: String,
    pub seconds: i64,
    pub micros: u32,
    /// The event's `data` as JSON text, if it has any.
    pub details: Option<String>,
}

/// What happened to a domain (libvirt's `virDomainEventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Defined,
    Undefined,
    Started,
    Suspended,
    Resumed,
    Stopped,
    Shutdown,
    PmSuspended,
    Crashed,
    Other(i32),
}

impl Lifecycle {
    fn of(event: c_int) -> Lifecycle {
        match event as u32 {
            virt_sys::VIR_DOMAIN_EVENT_DEFINED => Lifecycle::Defined,
            virt_sys::VIR_DOMAIN_EVENT_UNDEFINED => Lifecycle::Undefined,
            virt_sys::VIR_DOMAIN_EVENT_STARTED => Lifecycle::Started,
            virt_sys::VIR_DOMAIN_EVENT_SUSPENDED => Lifecycle::Suspended,
            virt_sys::VIR_DOMAIN_EVENT_RESUMED => Lifecycle::Resumed,
            virt_sys::VIR_DOMAIN_EVENT_STOPPED => Lifecycle::Stopped,
            virt_sys::VIR_DOMAIN_EVENT_SHUTDOWN => Lifecycle::Shutdown,
            virt_sys::VIR_DOMAIN_EVENT_PMSUSPENDED => Lifecycle::PmSuspended,
            virt_sys::VIR_DOMAIN_EVENT_CRASHED => Lifecycle::Crashed,
            _ => Lifecycle::Other(event),
        }
    }
}

type QemuCallback = Box<dyn Fn(QemuEvent) + Send + Sync>;
type LifecycleCallback = Box<dyn Fn(String, Lifecycle) + Send + Sync>;

/// Registers libvirt's default event loop; must come before any connection is opened.
pub fn register_event_loop() -> Result<(), Error> {
    virt::event::event_register_default_impl()
}

/// Runs libvirt's event loop on this thread, for ever (callbacks run here).
pub fn run_event_loop() {
    loop {
        if let Err(e) = virt::event::event_run_default_impl() {
            tracing::warn!("libvirt event loop: {e}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// Copies a C string libvirt owns (empty when null).
///
/// # Safety
/// `p` is null or points to a NUL-terminated string valid for this call.
unsafe fn owned(p: *const c_char) -> Option<String> {
    (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
}

/// The name of the domain an event is about.
///
/// # Safety
/// `dom` is the domain pointer libvirt passed to the callback, valid for its duration.
unsafe fn domain_name(dom: virt_sys::virDomainPtr) -> String {
    if dom.is_null() {
        return String::new();
    }
    owned(virt_sys::virDomainGetName(dom)).unwrap_or_default()
}

unsafe extern "C" fn qemu_event(
    _conn: virt_sys::virConnectPtr,
    dom: virt_sys::virDomainPtr,
    event: *const c_char,
    seconds: c_longlong,
    micros: c_uint,
    details: *const c_char,
    opaque: *mut c_void,
) {
    // SAFETY: `opaque` is the `QemuCallback` box `register_qemu_events` leaked, alive until
    // libvirt calls `free_qemu` after the last call of this callback.
    let callback = &*(opaque as *const QemuCallback);
    callback(QemuEvent {
        domain: domain_name(dom),
        name: owned(event).unwrap_or_default(),
        seconds,
        micros,
        details: owned(details),
    });
}

unsafe extern "C" fn free_qemu(opaque: *mut c_void) {
    // SAFETY: the box leaked by `register_qemu_events`, freed once, by libvirt.
    drop(Box::from_raw(opaque as *mut QemuCallback));
}

/// Calls `callback` with every QMP event of every domain on `conn`.
pub fn register_qemu_events(
    conn: &Connect,
    callback: impl Fn(QemuEvent) + Send + Sync + 'static,
) -> Result<c_int, Error> {
    let boxed: Box<QemuCallback> = Box::new(Box::new(callback));
    let opaque = Box::into_raw(boxed) as *mut c_void;
    // SAFETY: a live connection; null domain and event name mean "all"; libvirt keeps
    // `opaque` until it calls `free_qemu`.
    let id = unsafe {
        virt_sys::virConnectDomainQemuMonitorEventRegister(
            conn.as_ptr(),
            ptr::null_mut(),
            ptr::null(),
            Some(qemu_event),
            opaque,
            Some(free_qemu),
            0,
        )
    };
    if id < 0 {
        // SAFETY: libvirt did not take `opaque`.
        unsafe { free_qemu(opaque) };
        return Err(Error::last_error());
    }
    Ok(id)
}

unsafe extern "C" fn lifecycle_event(
    _conn: virt_sys::virConnectPtr,
    dom: virt_sys::virDomainPtr,
    event: c_int,
    _detail: c_int,
    opaque: *mut c_void,
) {
    // SAFETY: the `LifecycleCallback` box `register_lifecycle_events` leaked, alive until
    // libvirt calls `free_lifecycle`.
    let callback = &*(opaque as *const LifecycleCallback);
    callback(domain_name(dom), Lifecycle::of(event));
}

unsafe extern "C" fn free_lifecycle(opaque: *mut c_void) {
    // SAFETY: the box leaked by `register_lifecycle_events`, freed once, by libvirt.
    drop(Box::from_raw(opaque as *mut LifecycleCallback));
}

type LifecycleFn = unsafe extern "C" fn(
    virt_sys::virConnectPtr,
    virt_sys::virDomainPtr,
    c_int,
    c_int,
    *mut c_void,
);
type GenericFn = unsafe extern "C" fn(virt_sys::virConnectPtr, virt_sys::virDomainPtr, *mut c_void);

/// Calls `callback` with every lifecycle event of every domain on `conn`.
pub fn register_lifecycle_events(
    conn: &Connect,
    callback: impl Fn(String, Lifecycle) + Send + Sync + 'static,
) -> Result<c_int, Error> {
    let boxed: Box<LifecycleCallback> = Box::new(Box::new(callback));
    let opaque = Box::into_raw(boxed) as *mut c_void;
    // SAFETY: libvirt's C API takes every event callback as the generic type and calls it
    // with the signature of the event ID (VIR_DOMAIN_EVENT_CALLBACK casts the same way);
    // the lifecycle signature is `LifecycleFn`.
    let generic = unsafe { std::mem::transmute::<LifecycleFn, GenericFn>(lifecycle_event) };
    // SAFETY: a live connection; a null domain means "all"; libvirt keeps `opaque` until
    // it calls `free_lifecycle`.
    let id = unsafe {
        virt_sys::virConnectDomainEventRegisterAny(
            conn.as_ptr(),
            ptr::null_mut(),
            virt_sys::VIR_DOMAIN_EVENT_ID_LIFECYCLE as c_int,
            Some(generic),
            opaque,
            Some(free_lifecycle),
        )
    };
    if id < 0 {
        // SAFETY: libvirt did not take `opaque`.
        unsafe { free_lifecycle(opaque) };
        return Err(Error::last_error());
    }
    Ok(id)
}
