//! The floor for any hyper gateway: a bare pass-through proxy that buffers the body and
//! forwards it with a pooled hyper-util client, then passes the answer back. No checks,
//! no parsing, no metrics.
//!
//! Usage: passthrough LISTEN UPSTREAM        e.g. passthrough 127.0.0.1:8081 http://127.0.0.1:3000

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Pool = Client<HttpConnector, Full<Bytes>>;

async fn proxy(
    pool: Pool,
    upstream: Arc<String>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let bad_gateway = || {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::BAD_GATEWAY;
        r
    };
    let Ok(body) = body.collect().await.map(|c| c.to_bytes()) else {
        return Ok(bad_gateway());
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("{upstream}{path}").parse::<Uri>() else {
        return Ok(bad_gateway());
    };
    parts.uri = uri;
    parts.headers.remove("host");
    let Ok(response) = pool
        .request(Request::from_parts(parts, Full::new(body)))
        .await
    else {
        return Ok(bad_gateway());
    };
    let (parts, body) = response.into_parts();
    let Ok(body) = body.collect().await.map(|c| c.to_bytes()) else {
        return Ok(bad_gateway());
    };
    Ok(Response::from_parts(parts, Full::new(body)))
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    let upstream = Arc::new(
        args.next()
            .unwrap_or_else(|| "http://127.0.0.1:3000".into()),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let pool: Pool = Client::builder(TokioExecutor::new()).build(connector);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let (pool, upstream) = (pool.clone(), Arc::clone(&upstream));
            tokio::spawn(async move {
                let service =
                    service_fn(move |req| proxy(pool.clone(), Arc::clone(&upstream), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
