//! A throwaway CA and server certificate for the TLS tests (`rediss://`), and how a
//! test process trusts it.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// A throwaway CA and a server certificate it signed for `127.0.0.1` and `localhost`
/// (EC P-256, valid two days), made with the `openssl` CLI once per test process in a
/// directory of its own (a dead process's is removed by the next one).
pub struct TestTls {
    /// The CA's certificate (PEM): what a client trusts.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// This process's CA and server certificate.
pub fn test_tls() -> &'static TestTls {
    static TLS: OnceLock<TestTls> = OnceLock::new();
    TLS.get_or_init(TestTls::generate)
}

impl TestTls {
    fn generate() -> Self {
        let tmp = std::env::temp_dir();
        // Those of test processes that are gone.
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("as-tls-")
                && !std::path::Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = tmp.join(format!("as-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .current_dir(&dir)
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("the TLS tests need the openssl CLI: {e}"));
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        openssl(
            &[
                &["req", "-x509", "-new", "-nodes"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2"],
                &["-subj", "/CN=authstream test CA"],
                &["-addext", "basicConstraints=critical,CA:TRUE"],
                &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req", "-new", "-nodes"][..],
                &ec,
                &["-keyout", "server.key", "-out", "server.csr"],
                &["-subj", "/CN=localhost"],
            ]
            .concat(),
        );
        // Client auth too: a cluster node presents it to the others on the bus.
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
             basicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth,clientAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        Self {
            ca: dir.join("ca.crt"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        }
    }

    /// Makes this process trust the CA, and only it, for `rediss://`: `SSL_CERT_FILE`,
    /// which the redis crate and the sharded subscriptions read (rustls-native-certs)
    /// for every TLS connection, as a deployment with a private CA does; and no
    /// `SSL_CERT_DIR` (a machine's may hold every public root, read again for every
    /// connection).
    ///
    /// Setting the environment is sound only while no other thread reads or writes
    /// it: nextest runs each test in a process of its own, and a test calls this
    /// first, before it starts anything that could.
    pub fn trust(&self) {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: see above: no other thread of this test process touches the
            // environment meanwhile.
            unsafe {
                std::env::set_var("SSL_CERT_FILE", &self.ca);
                std::env::remove_var("SSL_CERT_DIR");
            }
        });
    }

    /// Whether this process trusts the CA (`trust` was called).
    pub fn trusted(&self) -> bool {
        std::env::var_os("SSL_CERT_FILE").is_some_and(|file| file == self.ca.as_os_str())
    }

    /// A redis-server's TLS arguments: `port` is its TLS port, with no plain one.
    pub(super) fn server_args(&self, port: u16) -> Vec<String> {
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &path(&self.cert),
            "--tls-key-file",
            &path(&self.key),
            "--tls-ca-cert-file",
            &path(&self.ca),
            "--tls-auth-clients",
            "no",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// `redis-cli`'s arguments to talk to such a server.
    pub(super) fn cli_args(&self) -> Vec<String> {
        vec![
            "--tls".into(),
            "--cacert".into(),
            self.ca.to_string_lossy().into_owned(),
        ]
    }
}
