//! Lines for the daemon's log, written through the host's `log` import: `log::info!("dropped
//! {n} spans")`. They reach the log only if the plugin asks for [`crate::Capability::Log`] and
//! the operator grants it; otherwise the host accepts and drops them. Natively (in tests) they
//! are captured for [`crate::testing::take_logs`].

/// How important a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Detail for debugging a plugin.
    Debug,
    /// Normal operation.
    Info,
    /// Something the operator may want to look at.
    Warn,
    /// Something failed.
    Error,
}

/// Writes one line at `level`.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::guest::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::capture_log(level, message);
}

#[doc(hidden)]
#[macro_export]
macro_rules! __spoor_log_debug {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)+)) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __spoor_log_info {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)+)) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __spoor_log_warn {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)+)) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __spoor_log_error {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)+)) };
}

/// `debug!("format", args)`: a [`Level::Debug`] line.
pub use crate::__spoor_log_debug as debug;
/// `error!("format", args)`: a [`Level::Error`] line.
pub use crate::__spoor_log_error as error;
/// `info!("format", args)`: a [`Level::Info`] line.
pub use crate::__spoor_log_info as info;
/// `warn!("format", args)`: a [`Level::Warn`] line.
pub use crate::__spoor_log_warn as warn;
