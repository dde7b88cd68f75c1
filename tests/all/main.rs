//! End-to-end tests, one binary: each test starts the real `spoor` daemon on free 127.0.0.1
//! ports and talks to it the way users' services and UIs do.

mod bad_input;
mod clients;
mod collector_sampling;
mod crash;
mod diskfull;
mod garbage;
mod golden;
mod jaeger;
mod objstore;
mod overload;
mod plugins;
mod restart;
mod roles;
mod sampling;
mod spanlog;
mod spanlog_tenancy;
mod tenancy;
mod tls;
mod zipkin;
