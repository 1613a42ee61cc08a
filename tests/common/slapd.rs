//! A real OpenLDAP `slapd` with its own cn=config and mdb database in a temp dir, on an
//! ephemeral loopback port; killed (and its dir removed) on drop.
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
    pub port: u16,
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

fn config_ldif(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {dir}/slapd.pid

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

impl Slapd {
    pub fn start() -> Slapd {
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = dir.path().join("slapd.d");
        std::fs::create_dir_all(&conf).expect("config dir");
        std::fs::create_dir_all(dir.path().join("db")).expect("db dir");
        let config = dir.path().join("config.ldif");
        std::fs::write(&config, config_ldif(dir.path())).expect("config.ldif");
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
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut child = Command::new(SLAPD)
                .arg("-h")
                .arg(format!("ldap://127.0.0.1:{port}/"))
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
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Slapd {
                        child,
                        port,
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

    /// `concourse web` flags for this directory (plain LDAP: it is on loopback).
    pub fn web_flags(&self) -> Vec<String> {
        [
            ("--ldap-host", self.host()),
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
        .chain(["--ldap-insecure-no-ssl".to_string()])
        .collect()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
