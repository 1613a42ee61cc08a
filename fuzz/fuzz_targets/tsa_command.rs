//! The TSA's command payloads: the SSH `exec` line (`TsaCommand::parse`) and the worker JSON
//! each command reads from stdin (`Worker`), with the checks the TSA applies to it.
//!
//! Input: the exec line, then `\n`, then the stdin payload (see fuzz/seeds/tsa_command).
//! Properties:
//! - `TsaCommand::parse` never panics; an accepted command prints (`to_exec`, what the
//!   beacon sends) as a line that parses back to the same command; a refused one says
//!   `invalid command: ...`;
//! - a worker payload the TSA decodes (as `read_worker` does: the first JSON value) encodes
//!   and decodes back to itself (the ATC stores and lists it);
//! - `prepare_registration` only accepts a payload with a garden address and a numeric
//!   version, and leaves it named;
//! - `register-worker`'s address check only accepts addresses on the SSH peer's own IP.
#![no_main]

use concourse::proto::worker::{TsaCommand, Worker};
use concourse::tsa::check_direct_addresses;
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, SocketAddr};

const PEERS: [&str; 5] = ["127.0.0.1", "10.1.2.3", "::1", "::ffff:10.1.2.3", "fe80::1"];

fuzz_target!(|data: &[u8]| {
    let (exec, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    // The TSA reads the exec request's bytes this way (src/tsa/connection.rs).
    let exec = String::from_utf8_lossy(exec);
    match TsaCommand::parse(&exec) {
        Ok(command) => {
            let line = command.to_exec();
            assert_eq!(
                TsaCommand::parse(&line).as_ref(),
                Ok(&command),
                "{exec:?} parsed, but its to_exec {line:?} parses differently"
            );
        }
        Err(e) => assert!(e.to_string().starts_with("invalid command: "), "{e}"),
    }

    let Some(Ok(worker)) = serde_json::Deserializer::from_slice(payload)
        .into_iter::<Worker>()
        .next()
    else {
        return;
    };
    let encoded = serde_json::to_vec(&worker).expect("a worker encodes");
    let decoded: Worker = serde_json::from_slice(&encoded)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", String::from_utf8_lossy(&encoded)));
    assert_eq!(decoded, worker, "worker JSON round trip");

    let mut prepared = worker.clone();
    if prepared.prepare_registration().is_ok() {
        assert!(!prepared.garden_addr.is_empty());
        assert!(!prepared.name.is_empty());
        assert!(prepared
            .version
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.'));
    }

    for peer in PEERS {
        let peer: IpAddr = peer.parse().unwrap();
        if check_direct_addresses(&worker, peer).is_ok() {
            let own = peer.to_canonical();
            let garden: SocketAddr = worker.garden_addr.parse().expect("garden is IP:port");
            assert_eq!(
                garden.ip().to_canonical(),
                own,
                "garden {garden} for peer {peer}"
            );
            let url = url::Url::parse(&worker.baggageclaim_url).expect("baggageclaim is a URL");
            assert!(matches!(url.scheme(), "http" | "https"), "{url}");
            let host = match url.host() {
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
                other => panic!("baggageclaim host {other:?} accepted for peer {peer}"),
            };
            assert_eq!(
                host.to_canonical(),
                own,
                "baggageclaim {url} for peer {peer}"
            );
        }
    }
});
