//! Delivery: what leaves the instance. Notifications (templates,
//! channels, retries and failover), the SIEM event export, and the
//! heartbeat to an outside monitor.

pub(crate) mod export;
pub(crate) mod heartbeat;
pub(crate) mod notify;

pub use export::{Event, Exporter};
pub use notify::{
    Message, MessageContext, Notifier, Report, SIGNATURE_HEADER, TIMESTAMP_HEADER, Templates,
    deliver,
};
