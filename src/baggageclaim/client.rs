//! The HTTP client of a Baggageclaim server, implementing the `Baggageclaim` trait.

use crate::proto::baggageclaim::{
    AsyncHandle, AsyncVolume, Baggageclaim, BaggageclaimError, ByteStream, Encoding, ErrorBody,
    PrivilegedRequest, Properties, PropertyRequest, Volume, VolumeRequest,
};
use async_trait::async_trait;
use futures::StreamExt;
use reqwest::{Method, RequestBuilder, Response, StatusCode};

/// Talks to one Baggageclaim at `base_url` (e.g. `http://127.0.0.1:7788`).
#[derive(Clone)]
pub struct BaggageclaimClient {
    base: String,
    http: reqwest::Client,
}

impl BaggageclaimClient {
    pub fn new(base_url: impl Into<String>) -> Self {
        BaggageclaimClient {
            base: base_url.into().trim_end_matches('/').to_string(),
            http: crate::proto::worker_http_client(),
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        crate::telemetry::with_traceparent(
            self.http.request(method, format!("{}{}", self.base, path)),
        )
    }

    async fn send(&self, req: RequestBuilder) -> Result<Response, BaggageclaimError> {
        let resp = req
            .send()
            .await
            .map_err(|e| BaggageclaimError::Other(format!("baggageclaim unreachable: {e}")))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or(text);
        Err(BaggageclaimError::from_status(status, message))
    }

    async fn json<T: serde::de::DeserializeOwned>(resp: Response) -> Result<T, BaggageclaimError> {
        resp.json()
            .await
            .map_err(|e| BaggageclaimError::Other(format!("decoding response: {e}")))
    }
}

fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[async_trait]
impl Baggageclaim for BaggageclaimClient {
    async fn create_volume(&self, request: VolumeRequest) -> Result<Volume, BaggageclaimError> {
        let resp = self
            .send(self.request(Method::POST, "/volumes").json(&request))
            .await?;
        Self::json(resp).await
    }

    async fn create_volume_async(
        &self,
        request: VolumeRequest,
    ) -> Result<String, BaggageclaimError> {
        let resp = self
            .send(self.request(Method::POST, "/volumes-async").json(&request))
            .await?;
        Ok(Self::json::<AsyncHandle>(resp).await?.handle)
    }

    async fn create_volume_async_result(
        &self,
        handle: &str,
    ) -> Result<AsyncVolume, BaggageclaimError> {
        let resp = self
            .send(self.request(Method::GET, &format!("/volumes-async/{}", seg(handle))))
            .await?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Ok(AsyncVolume::Pending);
        }
        Ok(AsyncVolume::Done(Self::json(resp).await?))
    }

    async fn forget_volume_async(&self, handle: &str) -> Result<(), BaggageclaimError> {
        self.send(self.request(Method::DELETE, &format!("/volumes-async/{}", seg(handle))))
            .await?;
        Ok(())
    }

    async fn list_volumes(&self, filter: Properties) -> Result<Vec<Volume>, BaggageclaimError> {
        let pairs: Vec<(String, String)> = filter.into_iter().collect();
        let resp = self
            .send(self.request(Method::GET, "/volumes").query(&pairs))
            .await?;
        let list: Option<Vec<Volume>> = Self::json(resp).await?;
        Ok(list.unwrap_or_default())
    }

    async fn lookup_volume(&self, handle: &str) -> Result<Volume, BaggageclaimError> {
        let resp = self
            .send(self.request(Method::GET, &format!("/volumes/{}", seg(handle))))
            .await?;
        Self::json(resp).await
    }

    async fn destroy_volume(&self, handle: &str) -> Result<(), BaggageclaimError> {
        self.send(self.request(Method::DELETE, &format!("/volumes/{}", seg(handle))))
            .await?;
        Ok(())
    }

    async fn destroy_volumes(&self, handles: &[String]) -> Result<(), BaggageclaimError> {
        self.send(
            self.request(Method::DELETE, "/volumes/destroy")
                .json(handles),
        )
        .await?;
        Ok(())
    }

    async fn cleanup_orphans(&self) -> Result<(), BaggageclaimError> {
        self.send(self.request(Method::POST, "/volumes/cleanup-orphans"))
            .await?;
        Ok(())
    }

    async fn set_property(
        &self,
        handle: &str,
        key: &str,
        value: &str,
    ) -> Result<(), BaggageclaimError> {
        let path = format!("/volumes/{}/properties/{}", seg(handle), seg(key));
        self.send(self.request(Method::PUT, &path).json(&PropertyRequest {
            value: value.to_string(),
        }))
        .await?;
        Ok(())
    }

    async fn privileged(&self, handle: &str) -> Result<bool, BaggageclaimError> {
        let resp = self
            .send(self.request(Method::GET, &format!("/volumes/{}/privileged", seg(handle))))
            .await?;
        Self::json(resp).await
    }

    async fn set_privileged(
        &self,
        handle: &str,
        privileged: bool,
    ) -> Result<(), BaggageclaimError> {
        let path = format!("/volumes/{}/privileged", seg(handle));
        self.send(
            self.request(Method::PUT, &path)
                .json(&PrivilegedRequest { value: privileged }),
        )
        .await?;
        Ok(())
    }

    async fn stream_in(
        &self,
        handle: &str,
        path: &str,
        encoding: Encoding,
        limit_mb: Option<f64>,
        body: ByteStream,
    ) -> Result<(), BaggageclaimError> {
        let mut query = vec![("path", path.to_string())];
        if let Some(l) = limit_mb {
            query.push(("limit", format!("{l:.6}")));
        }
        let req = self
            .request(Method::PUT, &format!("/volumes/{}/stream-in", seg(handle)))
            .query(&query)
            .header("Content-Encoding", encoding.as_str())
            .body(reqwest::Body::wrap_stream(body));
        self.send(req).await?;
        Ok(())
    }

    async fn stream_out(
        &self,
        handle: &str,
        path: &str,
        encoding: Encoding,
    ) -> Result<ByteStream, BaggageclaimError> {
        let req = self
            .request(Method::PUT, &format!("/volumes/{}/stream-out", seg(handle)))
            .query(&[("path", path)])
            .header("Accept-Encoding", encoding.as_str());
        let resp = self.send(req).await?;
        Ok(Box::pin(
            resp.bytes_stream()
                .map(|r| r.map_err(std::io::Error::other)),
        ))
    }

    async fn stream_p2p_out(
        &self,
        handle: &str,
        path: &str,
        encoding: Encoding,
        stream_in_url: &str,
    ) -> Result<(), BaggageclaimError> {
        let req = self
            .request(
                Method::PUT,
                &format!("/volumes/{}/stream-p2p-out", seg(handle)),
            )
            .query(&[
                ("path", path),
                ("streamInURL", stream_in_url),
                ("encoding", encoding.as_str()),
            ]);
        let text = self
            .send(req)
            .await?
            .text()
            .await
            .map_err(BaggageclaimError::other)?;
        match text.trim() {
            "ok" => Ok(()),
            other => Err(BaggageclaimError::Other(other.to_string())),
        }
    }

    async fn p2p_url(&self) -> Result<String, BaggageclaimError> {
        let resp = self.send(self.request(Method::GET, "/p2p-url")).await?;
        resp.text().await.map_err(BaggageclaimError::other)
    }
}
