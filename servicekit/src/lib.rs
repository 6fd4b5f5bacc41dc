//! What every ToyStore service's HTTP server shares: JSON error answers, extractors that turn
//! bad input into clear 4xx answers, body limits, the cluster token, logging set-up, serving
//! with bounded connections, serving inside a test process, and the shutdown signal. Wire types live in `api`; this crate is the server side only.

mod error;
mod extract;
mod limits;
mod logging;
mod serve;
mod shutdown;
mod spawn;
mod token;

pub use error::{HttpError, method_not_allowed, not_found};
pub use extract::{ApiJson, idempotency_key, order_number};
pub use limits::reject_oversized;
pub use logging::init_tracing;
pub use serve::{BindError, Limits, bind, raise_fd_limit, serve};
pub use shutdown::{Stop, shutdown_signal, stop_signal};
pub use spawn::{Spawned, bind_loopback};
pub use token::{RequiredToken, read_token, require_token};
