//! Delivery: what leaves the instance. Notifications (templates,
//! channels, retries and failover), the SIEM event export, and the
//! heartbeat to an outside monitor.

pub mod export;
pub mod heartbeat;
pub mod notify;
