//! `concourse generate-key`: RSA keys (session signing) and SSH keys (TSA host key, worker
//! keys) in the formats upstream writes them.

use crate::cli::{GenerateKeyArgs, KeyType};
use anyhow::Context;
use rsa::pkcs1::EncodeRsaPrivateKey;
use std::io::Write;
use std::path::Path;

pub(crate) fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))
}

/// A new RSA private key as PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`).
pub(crate) fn rsa_private_pem(bits: usize) -> anyhow::Result<String> {
    let key =
        rsa::RsaPrivateKey::new(&mut rand::thread_rng(), bits).context("generating RSA key")?;
    Ok(key
        .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
        .context("encoding key")?
        .to_string())
}

pub fn generate(args: &GenerateKeyArgs) -> anyhow::Result<()> {
    if args.bits < 1024 {
        anyhow::bail!("key size must be at least 1024 bits, got {}", args.bits);
    }
    let mut rng = rand::thread_rng();
    let key = rsa::RsaPrivateKey::new(&mut rng, args.bits).context("generating RSA key")?;
    match args.key_type {
        KeyType::Rsa => {
            let pem = key
                .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
                .context("encoding key")?;
            write_private(&args.filename, pem.as_bytes())?;
            println!("wrote private key to {}", args.filename.display());
        }
        KeyType::Ssh => {
            let keypair = ssh_key::private::RsaKeypair::try_from(key).context("converting key")?;
            let private = ssh_key::PrivateKey::from(keypair);
            let openssh = private
                .to_openssh(ssh_key::LineEnding::LF)
                .context("encoding key")?;
            write_private(&args.filename, openssh.as_bytes())?;
            let public = private
                .public_key()
                .to_openssh()
                .context("encoding public key")?;
            let pub_path = format!("{}.pub", args.filename.display());
            std::fs::write(&pub_path, format!("{public}\n"))
                .with_context(|| format!("writing {pub_path}"))?;
            println!("wrote private key to {}", args.filename.display());
            println!("wrote ssh public key to {pub_path}");
        }
    }
    Ok(())
}
