//! End-to-end tests over real gRPC on 127.0.0.1:0 with the real server,
//! compiled as one binary.

mod access_log;
mod admin_token;
mod admission;
mod architecture;
mod audit;
mod auth;
mod cli;
mod common;
mod crud;
mod embed;
mod errors;
mod faults;
mod layering;
mod lifecycle;
mod lineage;
mod metrics;
mod quotas;
mod readme;
mod sdk;
mod sigterm;
mod tls;
