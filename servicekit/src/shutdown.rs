//! Graceful shutdown: SIGTERM and SIGINT (Ctrl-C).
//!
//! The two mean different things to a service that can tell them apart: SIGTERM is a stop of
//! this one process (the kubelet, a rolling upgrade), SIGINT is everyone stopping at once (Ctrl-C
//! reaches every process of the terminal's group; `toystore up` stops a whole store with it).
//! An order replica hands leadership away on SIGTERM only: handing it to peers that are
//! stopping too would only delay the stop.

/// Which signal asked for the stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: this process alone is asked to stop.
    Terminate,
    /// SIGINT: the whole store (or terminal) is stopping.
    Interrupt,
}

/// A future that completes with the first SIGTERM or SIGINT.
///
/// The handlers are installed when this function is called, not when the future is first
/// polled, so a signal that arrives while the program is still starting up is not lost (and
/// does not kill the process with the default action). Call it early, inside the runtime.
pub fn stop_signal() -> impl std::future::Future<Output = Stop> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    async move {
        let stop = tokio::select! {
            _ = term.recv() => Stop::Terminate,
            _ = int.recv() => Stop::Interrupt,
        };
        tracing::info!(?stop, "shutdown signal received");
        stop
    }
}

/// [`stop_signal`] for services that stop the same way on either signal.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    let stop = stop_signal();
    async move {
        stop.await;
    }
}
