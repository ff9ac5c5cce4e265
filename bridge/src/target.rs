//! Where QEMU's QMP monitor is, and the byte stream to it.
//!
//! `--qmp unix:/path`, `--qmp tcp:HOST:PORT`, or a bare path (Unix). [`Socket`] wraps
//! either kind of stream (to QEMU, or from a `--share-socket` client) with the few
//! operations a framed QMP stream needs, reading through `readable` + `try_read` so an
//! idle session holds no read buffer.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UnixStream};

/// A QMP endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QmpTarget {
    Unix(PathBuf),
    Tcp(String),
    /// A libvirt domain: its QMP is libvirt's, reached through libvirt's API.
    Libvirt {
        uri: String,
        domain: String,
    },
}

/// Why a target can not be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("--qmp {0:?}: expected unix:PATH, tcp:HOST:PORT or a socket path")]
    Syntax(String),
    #[error("--qmp {target}: {reason}")]
    Unusable { target: QmpTarget, reason: String },
}

impl std::fmt::Display for QmpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QmpTarget::Unix(p) => write!(f, "unix:{}", p.display()),
            QmpTarget::Tcp(a) => write!(f, "tcp:{a}"),
            QmpTarget::Libvirt { uri, domain } => write!(f, "libvirt:{uri}#{domain}"),
        }
    }
}

impl std::str::FromStr for QmpTarget {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(addr) = s.strip_prefix("tcp:") {
            let ok = addr
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            return if ok {
                Ok(QmpTarget::Tcp(addr.to_owned()))
            } else {
                Err(TargetError::Syntax(s.to_owned()))
            };
        }
        let path = s.strip_prefix("unix:").unwrap_or(s);
        if path.is_empty() {
            return Err(TargetError::Syntax(s.to_owned()));
        }
        Ok(QmpTarget::Unix(PathBuf::from(path)))
    }
}

impl QmpTarget {
    /// Checks at start-up what can be checked without taking the monitor: a Unix target
    /// must exist and be a socket.
    pub fn preflight(&self) -> Result<(), TargetError> {
        use std::os::unix::fs::FileTypeExt;
        let QmpTarget::Unix(path) = self else {
            return Ok(());
        };
        let unusable = |reason: String| TargetError::Unusable {
            target: self.clone(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| unusable(e.to_string()))?;
        if !meta.file_type().is_socket() {
            return Err(unusable("not a Unix socket".into()));
        }
        Ok(())
    }

    /// Opens a connection, failing after `timeout`.
    pub async fn connect(&self, timeout: Duration) -> std::io::Result<Socket> {
        let connect = async {
            Ok(match self {
                QmpTarget::Unix(p) => Socket::Unix(UnixStream::connect(p).await?),
                QmpTarget::Tcp(a) => {
                    let s = TcpStream::connect(a).await?;
                    s.set_nodelay(true)?;
                    Socket::Tcp(s)
                }
                QmpTarget::Libvirt { .. } => {
                    return Err(std::io::Error::other(
                        "a libvirt domain is reached through libvirt, not a socket",
                    ))
                }
            })
        };
        tokio::time::timeout(timeout, connect).await.map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "connection timed out")
        })?
    }
}

/// A connected QMP byte stream.
#[derive(Debug)]
pub enum Socket {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Socket {
    /// Waits until a read would not block.
    pub async fn readable(&self) -> std::io::Result<()> {
        match self {
            Socket::Unix(s) => s.readable().await,
            Socket::Tcp(s) => s.readable().await,
        }
    }

    /// Reads what is there without waiting (`WouldBlock` if nothing is).
    pub fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Socket::Unix(s) => s.try_read(buf),
            Socket::Tcp(s) => s.try_read(buf),
        }
    }

    /// Closes the writing half (the peer reads end of file).
    pub async fn shutdown(&mut self) {
        let _ = match self {
            Socket::Unix(s) => s.shutdown().await,
            Socket::Tcp(s) => s.shutdown().await,
        };
    }

    /// Writes all of `bytes`.
    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Socket::Unix(s) => s.write_all(bytes).await,
            Socket::Tcp(s) => s.write_all(bytes).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_target_forms() {
        assert_eq!(
            "unix:/a/b".parse::<QmpTarget>().unwrap(),
            QmpTarget::Unix("/a/b".into())
        );
        assert_eq!(
            "/a/b".parse::<QmpTarget>().unwrap(),
            QmpTarget::Unix("/a/b".into())
        );
        assert_eq!(
            "tcp:127.0.0.1:4444".parse::<QmpTarget>().unwrap(),
            QmpTarget::Tcp("127.0.0.1:4444".into())
        );
        assert_eq!(
            "tcp:[::1]:1".parse::<QmpTarget>().unwrap().to_string(),
            "tcp:[::1]:1"
        );
        for bad in ["tcp:host", "tcp::1", "tcp:h:99999", "unix:", ""] {
            assert!(bad.parse::<QmpTarget>().is_err(), "{bad}");
        }
    }

    #[test]
    fn preflight_names_the_problem() {
        let missing = QmpTarget::Unix("/nonexistent/qmp.sock".into());
        let e = missing.preflight().unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/qmp.sock") && e.contains("No such file"),
            "{e}"
        );
        let file = QmpTarget::Unix("/etc/hostname".into());
        assert!(file
            .preflight()
            .unwrap_err()
            .to_string()
            .contains("not a Unix socket"));
    }
}
