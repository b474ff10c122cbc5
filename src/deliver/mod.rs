//! What the OTLP drains report: [`DeliveryStats`] (every item counted once
//! as acknowledged, rejected or failed), [`ExportError`] with a
//! transport-neutral [`ExportStatus`], and the [`Outage`] in progress.
//!
//! Behind them, the delivery engine, written once for every signal and every transport:
//! a window of requests in flight, one ticket per request so each item is
//! counted exactly once, the retry loop within a budget, and the outage
//! report. A transport (gRPC, HTTP) implements one small trait,
//! `Transport`: send the bytes, classify the answer.
//!
//! ```text
//! batch --encode (otlp)--> requests --window--> Request task --Transport::send--> collector
//!                                                  |  retry / throttle / give up (the transport's classification)
//!                                                  '--> ticket: acked | rejected | failed, exactly once
//! ```

mod drain;
mod error;
mod outage;
mod request;
mod retry;
mod rpc;
mod service;
mod spooled;
mod stats;
mod status;
mod transport;

pub(crate) use drain::{DeliveryDrain, DeliverySettings};
pub use error::ExportError;
pub use outage::Outage;
pub(crate) use request::Outcome;
pub(crate) use retry::RetryDecision;
pub(crate) use rpc::RpcStatus;
// Written only where a status with details is made: the receiver and the tests.
#[cfg(any(test, feature = "receiver"))]
pub(crate) use rpc::Any;
pub(crate) use service::Service;
pub(crate) use spooled::SpoolShared;
pub use spooled::{NotDelivered, SpoolHandle, SpoolOpenError, SpoolStats};
pub use stats::{DeliveryStats, DeliveryStatsHandle};
pub use status::{ExportStatus, GrpcCode, StatusCode};
pub(crate) use transport::{Failure, Transport};
