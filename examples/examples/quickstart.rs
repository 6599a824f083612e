//! Quick start: a shop that cancels orders left unpaid, on the embedded default setup
//! (memory store, thread pool, background scheduler). No server needed; ends by itself.
//!
//! ```sh
//! cargo run -p examples --example quickstart
//! ```
//!
//! * When an order is placed, a one-off job is scheduled to cancel it if it is still unpaid
//!   3 seconds later; paying the order removes that job.
//! * An interval job prints a stock report every 2 seconds.
//! * A one-off job sends a newsletter once, 1 second in.
//!
//! Every scheduler event is printed as it happens.

use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::Duration;

use chrono::TimeDelta;
use executors::ThreadPoolExecutor;
use jobstore_memory::MemoryJobStore;
use scheduler_core::{BackgroundScheduler, EventMask, JobRegistry, JobSpec, Scheduler};
use serde::{Deserialize, Serialize};
use triggers::{DateTrigger, IntervalTrigger};

/// The arguments of the cancellation job: which order.
#[derive(Debug, Serialize, Deserialize)]
struct Order {
    id: u32,
}

/// The shop's orders and whether each is paid.
type Orders = Arc<Mutex<Vec<(u32, bool)>>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The scheduler's warnings and errors on standard error (RUST_LOG chooses more).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let orders: Orders = Arc::default();

    // Job functions are registered by name: the name is what a job stores.
    let registry = JobRegistry::new();
    let shop = orders.clone();
    let cancel_unpaid = registry.register_sync("cancel_unpaid_order", move |order: Order| {
        let mut orders = shop.lock().map_err(|_| "orders lock poisoned")?;
        let Some(index) = orders.iter().position(|(id, _)| *id == order.id) else {
            return Err(format!("order {} does not exist", order.id));
        };
        if orders[index].1 {
            println!("    order {} is paid: nothing to cancel", order.id);
        } else {
            orders.remove(index);
            println!("    order {} was not paid in time: cancelled", order.id);
        }
        Ok(())
    });
    let shop = orders.clone();
    let stock_report = registry.register_sync("stock_report", move |(): ()| {
        let open = shop.lock().map(|o| o.len()).unwrap_or(0);
        println!("    stock report: {open} open order(s)");
    });
    let newsletter = registry.register_sync("send_newsletter", |subject: String| {
        println!("    newsletter sent: {subject:?}");
    });

    let scheduler = BackgroundScheduler::new(
        Scheduler::builder()
            .registry(registry)
            .jobstore("default", MemoryJobStore::new())
            .executor("default", ThreadPoolExecutor::new(4)?),
    )?;
    scheduler.add_listener(|event| println!("[event] {event}"), EventMask::ALL);
    scheduler.start()?;
    let now = scheduler.scheduler().clock().now();

    scheduler.add_job(
        JobSpec::new(
            stock_report.call(()),
            IntervalTrigger::builder()
                .every(Duration::from_secs(2))
                .build_at(now)?,
        )
        .id("stock-report"),
    )?;
    scheduler.add_job(
        JobSpec::new(
            newsletter.call("Autumn sale".into()),
            DateTrigger::new(now + TimeDelta::seconds(1)),
        )
        .id("newsletter"),
    )?;

    // Two orders come in; each gets a cancellation job 3 s out.
    for id in [1, 2] {
        orders
            .lock()
            .map_err(|_| "orders lock poisoned")?
            .push((id, false));
        let cancel_at = scheduler.scheduler().clock().now() + TimeDelta::seconds(3);
        scheduler.add_job(
            JobSpec::new(
                cancel_unpaid.call(Order { id }),
                DateTrigger::new(cancel_at),
            )
            .id(format!("cancel-order-{id}"))
            .name(format!("cancel order {id} if unpaid")),
        )?;
        println!(
            "order {id} placed; it will be cancelled at {} unless paid",
            cancel_at.format("%H:%M:%S%.3f")
        );
    }
    print!("{}", scheduler.jobs_table(None)?);

    // Order 1 is paid after 1.5 s: its cancellation job goes away.
    sleep(Duration::from_millis(1500));
    if let Some(order) = orders
        .lock()
        .map_err(|_| "orders lock poisoned")?
        .iter_mut()
        .find(|(id, _)| *id == 1)
    {
        order.1 = true;
    }
    scheduler.remove_job("cancel-order-1", None)?;
    println!("order 1 paid");

    sleep(Duration::from_millis(3500));
    print!("{}", scheduler.jobs_table(None)?);
    let open: Vec<u32> = orders
        .lock()
        .map_err(|_| "orders lock poisoned")?
        .iter()
        .map(|(id, _)| *id)
        .collect();
    println!("open orders at the end: {open:?}");
    scheduler.shutdown(true)?;
    if open != [1] {
        return Err(format!("expected only the paid order 1 to remain, found {open:?}").into());
    }
    Ok(())
}
