//! A real OpenLDAP `slapd` with its own cn=config and mdb database in a temp dir, on
//! ephemeral loopback ports (and, for the TLS tests, a CA and server certificate made with
//! openssl); killed (and its dir removed) on drop.
//!
//! Directory: `dc=example,dc=org`, service account `cn=admin,dc=example,dc=org` /
//! `adminpw`; people under `ou=people` (inetOrgPerson: alice/alicepw, bob/bobpw), groups
//! under `ou=groups` (groupOfNames: `devs` = alice, `ops` = bob).

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SLAPD: &str = "/usr/sbin/slapd";
pub const SUFFIX: &str = "dc=example,dc=org";
pub const BIND_DN: &str = "cn=admin,dc=example,dc=org";
pub const BIND_PW: &str = "adminpw";

pub struct Slapd {
    child: Child,
    /// `ldap://` (StartTLS offered when started with TLS).
    pub port: u16,
    /// `ldaps://`, when started with TLS.
    pub tls_port: Option<u16>,
    // Removed after `drop` has killed the process.
    _dir: tempfile::TempDir,
}

/// Whether slapd is installed. Without it, tests skip locally and fail in CI (which
/// installs `slapd ldap-utils`).
pub fn available() -> bool {
    if Path::new(SLAPD).exists() && Path::new("/usr/sbin/slapadd").exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI installs slapd (apt-get install slapd ldap-utils), but {SLAPD} is missing"
    );
    eprintln!("skipping: {SLAPD} is not installed (apt-get install slapd ldap-utils)");
    false
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with openssl:
/// `ca.pem`, `server.pem`, `server.key` in `dir`.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(
        Command::new("openssl")
            .current_dir(dir)
            .args(["req", "-x509"])
            .args(ec)
            .args(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"])
            .args(["-subj", "/CN=concourse test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
        "openssl (CA)",
    );
    run(
        Command::new("openssl")
            .current_dir(dir)
            .arg("req")
            .args(ec)
            .args(["-keyout", "server.key", "-out", "server.csr"])
            .args(["-subj", "/CN=127.0.0.1"]),
        "openssl (server key)",
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .expect("server.ext");
    run(
        Command::new("openssl")
            .current_dir(dir)
            .args(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem"])
            .args(["-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem"])
            .args(["-days", "2", "-extfile", "server.ext"]),
        "openssl (server certificate)",
    );
}

fn config_ldif(dir: &Path, tls: bool) -> String {
    let tls = if tls {
        format!(
            "olcTLSCACertificateFile: {d}/ca.pem\nolcTLSCertificateFile: {d}/server.pem\n\
             olcTLSCertificateKeyFile: {d}/server.key\n",
            d = dir.display()
        )
    } else {
        String::new()
    };
    let dir = dir.display();
    format!(
        "dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {dir}/slapd.pid
{tls}
dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {SUFFIX}
olcRootDN: {BIND_DN}
olcRootPW: {BIND_PW}
olcDbDirectory: {dir}/db
olcDbMaxSize: 16777216
olcAccess: to attrs=userPassword by anonymous auth by self read by * none
olcAccess: to * by users read by * none
"
    )
}

fn person(uid: &str, cn: &str, password: &str) -> String {
    format!(
        "dn: uid={uid},ou=people,{SUFFIX}
objectClass: inetOrgPerson
uid: {uid}
cn: {cn}
sn: {cn}
mail: {uid}@example.org
userPassword: {password}
"
    )
}

fn group(cn: &str, members: &[&str]) -> String {
    let mut g = format!("dn: cn={cn},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {cn}\n");
    for m in members {
        g.push_str(&format!("member: uid={m},ou=people,{SUFFIX}\n"));
    }
    g
}

fn data_ldif() -> String {
    [
        format!("dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n"),
        format!("dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n"),
        format!("dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n"),
        person("alice", "Alice Liddell", "alicepw"),
        person("bob", "Bob Builder", "bobpw"),
        group("devs", &["alice"]),
        group("ops", &["bob"]),
    ]
    .join("\n")
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Slapd {
    /// Plain LDAP only.
    pub fn start() -> Slapd {
        Self::spawn(false)
    }

    /// LDAP with StartTLS and LDAPS, with a certificate for 127.0.0.1 signed by
    /// [`Slapd::ca_cert`].
    pub fn start_tls() -> Slapd {
        Self::spawn(true)
    }

    pub fn ca_cert(&self) -> std::path::PathBuf {
        self._dir.path().join("ca.pem")
    }

    fn spawn(tls: bool) -> Slapd {
        let dir = tempfile::tempdir().expect("temp dir");
        if tls {
            make_certs(dir.path());
        }
        let conf = dir.path().join("slapd.d");
        std::fs::create_dir_all(&conf).expect("config dir");
        std::fs::create_dir_all(dir.path().join("db")).expect("db dir");
        let config = dir.path().join("config.ldif");
        std::fs::write(&config, config_ldif(dir.path(), tls)).expect("config.ldif");
        let data = dir.path().join("data.ldif");
        std::fs::write(&data, data_ldif()).expect("data.ldif");
        run(
            Command::new("/usr/sbin/slapadd")
                .args(["-n", "0", "-F"])
                .arg(&conf)
                .arg("-l")
                .arg(&config),
            "slapadd (cn=config)",
        );
        run(
            Command::new("/usr/sbin/slapadd")
                .args(["-b", SUFFIX, "-F"])
                .arg(&conf)
                .arg("-l")
                .arg(&data),
            "slapadd (data)",
        );
        // A port another process grabs between our probe and slapd's bind makes slapd
        // exit; then try another.
        for _ in 0..5 {
            let port = free_port();
            let tls_port = tls.then(free_port);
            let mut urls = format!("ldap://127.0.0.1:{port}/");
            if let Some(p) = tls_port {
                urls.push_str(&format!(" ldaps://127.0.0.1:{p}/"));
            }
            let mut child = Command::new(SLAPD)
                .arg("-h")
                .arg(urls)
                .arg("-F")
                .arg(&conf)
                // Debug level 0 keeps slapd in the foreground, so we own the process.
                .args(["-d", "0"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawning slapd");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let listening = |p: u16| TcpStream::connect(("127.0.0.1", p)).is_ok();
                if listening(port) && tls_port.is_none_or(listening) {
                    return Slapd {
                        child,
                        port,
                        tls_port,
                        _dir: dir,
                    };
                }
                if child.try_wait().expect("slapd status").is_some() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "slapd did not listen on {port} within 30s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("slapd exited at start five times");
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `concourse web` flags for this directory over plain LDAP (it is on loopback).
    pub fn web_flags(&self) -> Vec<String> {
        let mut flags = Self::flags_for_host(&self.host());
        flags.push("--ldap-insecure-no-ssl".into());
        flags
    }

    /// The flags for this harness's directory at `host`, without the transport's.
    pub fn flags_for_host(host: &str) -> Vec<String> {
        [
            ("--ldap-host", host.to_string()),
            ("--ldap-bind-dn", BIND_DN.into()),
            ("--ldap-bind-pw", BIND_PW.into()),
            ("--ldap-user-search-base-dn", format!("ou=people,{SUFFIX}")),
            (
                "--ldap-user-search-filter",
                "(objectClass=inetOrgPerson)".into(),
            ),
            ("--ldap-user-search-username", "uid".into()),
            ("--ldap-user-search-name-attr", "cn".into()),
            ("--ldap-group-search-base-dn", format!("ou=groups,{SUFFIX}")),
            (
                "--ldap-group-search-filter",
                "(objectClass=groupOfNames)".into(),
            ),
            ("--ldap-group-search-user-attr", "DN".into()),
            ("--ldap-group-search-group-attr", "member".into()),
            ("--ldap-group-search-name-attr", "cn".into()),
            ("--ldap-display-name", "Example Directory".into()),
            ("--ldap-username-prompt", "Example uid".into()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_string(), v])
        .collect()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
