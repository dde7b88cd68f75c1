//! spoor-plugin-host's integration tests, in one binary: the example plugins on their golden
//! fixtures, the hostile guests, and the API (specs, reload, threads, CLI helpers).

mod api;
mod examples;
mod hostile;
mod policy;
mod support;
