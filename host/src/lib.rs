#![doc = include_str!("../../README.md")]

pub mod admin;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod egress;
pub mod engine;
pub mod ingress;
pub mod lifecycle;
pub mod loadgen;
pub mod pipeline;
pub mod plugins;
pub mod scrub;
pub mod server;
pub mod store;
pub mod telemetry;
