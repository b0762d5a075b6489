#![allow(dead_code)]
pub mod workload;
