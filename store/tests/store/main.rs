//! The store crate's integration tests, one binary: the store conformance suite
//! (Redis and in-memory), Redis outages, revocation, rate limits and stream tokens, on
//! one server, a Cluster and TLS.
//! Every Redis test runs against a real `redis-server` started by `authstream_testkit`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Instantiates each listed `async fn(Store)` of the enclosing module twice: in
/// `redis::` on a real Redis, and in `memory::` on the in-memory store.
macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(authstream_testkit::redis_store()).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let store = authstream_store::Store::memory(&authstream_testkit::unique_prefix());
                    store.start_background();
                    super::$name(store).await;
                }
            )*
        }
        /// This module's cases, for the one test that runs them all on a Redis Cluster.
        pub fn cases() -> Vec<(&'static str, crate::Case)> {
            vec![$((stringify!($name), |store| Box::pin($name(store)))),*]
        }
    };
}

/// One case of a store suite, run on any store.
type Case = fn(authstream_store::Store) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

mod cluster;
mod helpers;
mod rate_limit;
mod revocation;
mod slots;
mod store_conformance;
mod store_outage;
mod stream_open;
mod stream_tokens;
mod tls;
