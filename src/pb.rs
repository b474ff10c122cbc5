//! The code generated from `proto/` by `build.rs`. Nothing else lives here.
//!
//! The module tree mirrors the protobuf packages below
//! `opentelemetry.proto`, because the generated code refers to its
//! neighbours with relative `super::` paths.

#![allow(missing_docs, missing_debug_implementations, unreachable_pub, dead_code, rust_2018_idioms)]
#![allow(clippy::all, clippy::pedantic)]

#[rustfmt::skip]
pub(crate) mod common {
    pub(crate) mod v1 {
        include!(concat!(env!("OUT_DIR"), "/opentelemetry.proto.common.v1.rs"));
    }
}

#[rustfmt::skip]
pub(crate) mod resource {
    pub(crate) mod v1 {
        include!(concat!(env!("OUT_DIR"), "/opentelemetry.proto.resource.v1.rs"));
    }
}

#[rustfmt::skip]
pub(crate) mod metrics {
    pub(crate) mod v1 {
        include!(concat!(env!("OUT_DIR"), "/opentelemetry.proto.metrics.v1.rs"));
    }
}

#[rustfmt::skip]
pub(crate) mod trace {
    pub(crate) mod v1 {
        include!(concat!(env!("OUT_DIR"), "/opentelemetry.proto.trace.v1.rs"));
    }
}

#[rustfmt::skip]
pub(crate) mod logs {
    pub(crate) mod v1 {
        include!(concat!(env!("OUT_DIR"), "/opentelemetry.proto.logs.v1.rs"));
    }
}

#[rustfmt::skip]
pub(crate) mod collector {
    pub(crate) mod metrics {
        pub(crate) mod v1 {
            include!(concat!(env!("OUT_DIR"), "/opentelemetry.proto.collector.metrics.v1.rs"));
        }
    }
    pub(crate) mod trace {
        pub(crate) mod v1 {
            include!(concat!(env!("OUT_DIR"), "/opentelemetry.proto.collector.trace.v1.rs"));
        }
    }
    pub(crate) mod logs {
        pub(crate) mod v1 {
            include!(concat!(env!("OUT_DIR"), "/opentelemetry.proto.collector.logs.v1.rs"));
        }
    }
}
