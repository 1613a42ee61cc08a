//! Byte streams as they cross the worker seam: tar archives and process output.

use bytes::Bytes;
use futures::Stream;
use std::pin::Pin;

/// A stream of bytes (a tar archive, compressed or not). Errors end the stream.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A stream holding the given bytes, in one chunk.
pub fn byte_stream_from(bytes: impl Into<Bytes>) -> ByteStream {
    let bytes: Bytes = bytes.into();
    Box::pin(futures::stream::once(async move { Ok(bytes) }))
}

/// Reads a whole stream into memory (tests and small files such as `metadata.json`).
pub async fn collect_bytes(mut stream: ByteStream) -> std::io::Result<Vec<u8>> {
    use futures::StreamExt;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}
