//! The one integration-test binary: every module here starts real servers on 127.0.0.1:0 and
//! talks HTTP (or stdio pipes) to them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test-only binary

mod harness;
#[path = "../support/moto.rs"]
mod moto;
mod nodes;

mod auth;
mod auth_attacks;
mod auth_cli;
mod auth_cluster;
mod bundle_attacks;
mod bundle_kit;
mod bundle_rollout;
mod bundles;
mod cluster;
mod command;
mod connections;
mod errors;
mod failover;
mod faults;
mod features;
mod hygiene;
mod legacy_sse;
mod lifecycle;
mod limits;
mod memory;
mod modern;
mod partitions;
mod plain_http;
mod python;
mod python_support;
mod reaper;
mod redis_harness;
mod sessions;
mod stdio;
mod streaming;
