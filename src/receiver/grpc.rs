//! The receiver's OTLP/gRPC listener: the three tonic services over the
//! shared [`State`], and a [`Reply`] as a gRPC answer.

use std::sync::Arc;
use std::time::SystemTime;

use tonic::transport::server::{Router, TcpIncoming};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Code, Request, Response, Status};

use super::reply::grpc_code_for;
use super::state::{Export, State, Via};
use super::{HttpBody, ReceiverError, ReceiverTls, Reply};
use crate::deliver::GrpcCode;
use crate::grpc::status_with_retry_delay;
use crate::pb::collector::logs::v1 as logs_svc;
use crate::pb::collector::metrics::v1 as metrics_svc;
use crate::pb::collector::trace::v1 as trace_svc;

/// The gRPC server with the three services, each refusing requests above
/// `limit` bytes (with OUT_OF_RANGE, tonic's answer) and accepting gzip and
/// zstd.
pub(super) fn router(state: &Arc<State>, limit: usize, tls: Option<&ReceiverTls>) -> Result<Router, ReceiverError> {
    let mut server = Server::builder();
    if let Some(tls) = tls {
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
        if let Some(ca) = &tls.client_ca_pem {
            config = config.client_ca_root(Certificate::from_pem(ca));
        }
        server = server.tls_config(config).map_err(|e| ReceiverError::Tls(e.into()))?;
    }
    Ok(server
        .add_service(
            metrics_svc::metrics_service_server::MetricsServiceServer::new(Service(state.clone()))
                .max_decoding_message_size(limit)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                .accept_compressed(tonic::codec::CompressionEncoding::Zstd),
        )
        .add_service(
            trace_svc::trace_service_server::TraceServiceServer::new(Service(state.clone()))
                .max_decoding_message_size(limit)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                .accept_compressed(tonic::codec::CompressionEncoding::Zstd),
        )
        .add_service(
            logs_svc::logs_service_server::LogsServiceServer::new(Service(state.clone()))
                .max_decoding_message_size(limit)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                .accept_compressed(tonic::codec::CompressionEncoding::Zstd),
        ))
}

/// Serves `router` on `listener` until `stopped` resolves.
pub(super) async fn serve(
    router: Router,
    listener: tokio::net::TcpListener,
    stopped: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), tonic::transport::Error> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    router
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stopped.await;
        })
        .await
}

struct Service(Arc<State>);

/// Metadata entries with text values, name and value.
fn metadata_pairs(metadata: &tonic::metadata::MetadataMap) -> Vec<(String, String)> {
    metadata
        .iter()
        .filter_map(|entry| match entry {
            tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                Some((k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            }
            tonic::metadata::KeyAndValueRef::Binary(..) => None,
        })
        .collect()
}

async fn export<R: Export>(state: &State, request: Request<R>) -> Result<Response<R::Response>, Status> {
    let headers = metadata_pairs(request.metadata());
    let request = request.into_inner();
    let reply = state.receive(&request, headers, Via::Grpc).await;
    answer::<R>(reply).map(Response::new)
}

/// A final reply (never `Delayed` or `Hang`) as a gRPC answer.
fn answer<R: Export>(reply: Reply) -> Result<R::Response, Status> {
    match reply {
        Reply::Ok => Ok(R::response(None)),
        Reply::PartialSuccess { rejected, message } => Ok(R::response(Some((rejected, message)))),
        Reply::Status { code, message } => Err(Status::new(tonic_code(code), message)),
        Reply::Throttle { code, delay } => Err(status_with_retry_delay(tonic_code(code), "scripted throttle", delay)),
        Reply::Http(http) => {
            let code = grpc_code_for(http.status);
            if code == GrpcCode::Ok {
                return Ok(R::response(None));
            }
            let message = match &http.body {
                HttpBody::Status { message } => message.clone(),
                HttpBody::Empty | HttpBody::Raw { .. } => format!("scripted HTTP {}", http.status),
            };
            match http.retry_after.as_ref().and_then(|r| r.delay(SystemTime::now())) {
                Some(delay) => Err(status_with_retry_delay(tonic_code(code), &message, delay)),
                None => Err(Status::new(tonic_code(code), message)),
            }
        }
        Reply::CloseMidResponse => Err(Status::unavailable("scripted close mid-response")),
        Reply::Delayed { .. } | Reply::Hang => unreachable!("the state answers delays and hangs itself"),
    }
}

/// This crate's code as tonic's.
fn tonic_code(code: GrpcCode) -> Code {
    match code {
        GrpcCode::Ok => Code::Ok,
        GrpcCode::Cancelled => Code::Cancelled,
        GrpcCode::Unknown => Code::Unknown,
        GrpcCode::InvalidArgument => Code::InvalidArgument,
        GrpcCode::DeadlineExceeded => Code::DeadlineExceeded,
        GrpcCode::NotFound => Code::NotFound,
        GrpcCode::AlreadyExists => Code::AlreadyExists,
        GrpcCode::PermissionDenied => Code::PermissionDenied,
        GrpcCode::ResourceExhausted => Code::ResourceExhausted,
        GrpcCode::FailedPrecondition => Code::FailedPrecondition,
        GrpcCode::Aborted => Code::Aborted,
        GrpcCode::OutOfRange => Code::OutOfRange,
        GrpcCode::Unimplemented => Code::Unimplemented,
        GrpcCode::Internal => Code::Internal,
        GrpcCode::Unavailable => Code::Unavailable,
        GrpcCode::DataLoss => Code::DataLoss,
        GrpcCode::Unauthenticated => Code::Unauthenticated,
    }
}

#[tonic::async_trait]
impl metrics_svc::metrics_service_server::MetricsService for Service {
    async fn export(
        &self,
        request: Request<metrics_svc::ExportMetricsServiceRequest>,
    ) -> Result<Response<metrics_svc::ExportMetricsServiceResponse>, Status> {
        export(&self.0, request).await
    }
}

#[tonic::async_trait]
impl trace_svc::trace_service_server::TraceService for Service {
    async fn export(
        &self,
        request: Request<trace_svc::ExportTraceServiceRequest>,
    ) -> Result<Response<trace_svc::ExportTraceServiceResponse>, Status> {
        export(&self.0, request).await
    }
}

#[tonic::async_trait]
impl logs_svc::logs_service_server::LogsService for Service {
    async fn export(
        &self,
        request: Request<logs_svc::ExportLogsServiceRequest>,
    ) -> Result<Response<logs_svc::ExportLogsServiceResponse>, Status> {
        export(&self.0, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonic_codes_have_the_same_numbers() {
        for code in super::super::reply::ALL_CODES {
            assert_eq!(tonic_code(code) as i32, super::super::reply::code_number(code), "{code:?}");
        }
    }
}
