//! Black-box tests of the server: each test starts the real router on `127.0.0.1:0` with its own
//! database (a SQLite file, or a fresh PostgreSQL database when `NANGO_TEST_DATABASE_URL` is set)
//! and a fake OAuth 2 provider on another port, then talks to both over HTTP and WebSocket only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod auth;
mod bad_input;
mod cache;
mod callback_page;
mod configs;
mod connect_sessions;
mod connections;
mod current_connections;
mod current_sessions;
mod dashboard;
mod direct_connections;
mod docs;
mod edge;
mod encryption;
mod flow_errors;
mod hardening;
mod health;
mod hosts;
mod integrations;
mod nango_import;
mod nango_import_api;
mod nango_import_db;
mod oauth1;
mod oauth_flow;
mod openapi;
mod providers;
mod proxy;
mod quirks;
mod redirect_mode;
mod refresh;
mod refresh_failures;
mod refresh_lifetimes;
mod replicas;
mod sdk;
mod state;
mod template_features;
mod webhooks;
mod websocket;
