//! Earning and reversing: a member sale earns points per line and is recorded by order; a refund
//! or void takes back what the refunded lines earned. Each event is counted once: its result is
//! kept (in the member record for a while, in the order record for as long as the order is kept)
//! and a replay gets the same numbers back without counting again.
//!
//! Writes go member first, then order. A crash between the two leaves the event in the member's
//! recent list but not in the order; the replay finds it there and finishes the order write.

use crate::config::LoyaltyConfig;
use crate::records::{self, Counted, Member, Order, OrderLine, day_number};
use kaunter_sdk::{PluginError, Refund, Sale, SaleLine, host};

/// A counted event and whose it was.
pub struct Outcome {
    /// The member.
    pub member: String,
    /// The result.
    pub counted: Counted,
}

/// What a sale's lines earn, before it is recorded.
struct Earning {
    den: i64,
    lines: Vec<OrderLine>,
}

impl Earning {
    fn points(&self) -> i64 {
        records::floor_points(self.lines.iter().map(|l| i128::from(l.points_scaled)).sum(), self.den)
    }

    fn spend(&self) -> i64 {
        self.lines.iter().map(|l| l.spend).sum()
    }
}

/// The lifetime value tiers are measured on.
fn lifetime(config: &LoyaltyConfig, member: &Member) -> i64 {
    match config.tier_basis {
        crate::config::TierBasis::LifetimePoints => member.lifetime_points,
        crate::config::TierBasis::LifetimeSpendMinor => member.lifetime_spend,
    }
}

/// Scaled points of each line. A line earns
/// `eligible_net × points_per_unit × category% × tier% / (unit_minor × 100 × 100)`, where
/// `eligible_net` is the line's net less its share of excluded tenders; the sale's points are
/// the floor of the sum (one rounding per sale, never per line).
fn earning(config: &LoyaltyConfig, sale: &Sale, tier_percent: i64) -> Result<Earning, PluginError> {
    let den = config.unit_minor * 100 * 100;
    let total = sale.totals.total.amount_minor;
    let excluded: i64 = sale
        .tenders
        .iter()
        .filter(|t| config.excludes_tender(&t.method))
        .map(|t| t.amount.amount_minor)
        .sum();
    let in_currency = sale.totals.total.currency == config.currency;
    if !in_currency {
        host::warn(&format!(
            "sale in {} earns nothing: points are earned in {}",
            sale.totals.total.currency, config.currency
        ));
    }
    // The share of the sale paid with earning tenders, as a fraction eligible/total.
    let eligible = (total - excluded.clamp(0, total.max(0))).max(0);
    let lines = sale
        .lines
        .iter()
        .map(|line| {
            let earns = in_currency && total > 0 && !config.excludes_sku(&line.sku);
            let spend = if earns {
                (i128::from(line.net.amount_minor) * i128::from(eligible)).div_euclid(i128::from(total))
            } else {
                0
            };
            let scaled = spend
                * i128::from(config.points_per_unit)
                * i128::from(config.category_percent(line))
                * i128::from(tier_percent);
            Ok(OrderLine {
                line_no: line.line_no,
                sku: line.sku.clone(),
                quantity_milli: line.quantity_milli,
                points_scaled: fits(scaled, line)?,
                spend: fits(spend, line)?,
                refunded_milli: 0,
            })
        })
        .collect::<Result<Vec<_>, PluginError>>()?;
    Ok(Earning { den, lines })
}

fn fits(value: i128, line: &SaleLine) -> Result<i64, PluginError> {
    i64::try_from(value)
        .map_err(|_| PluginError::Rejected(format!("line {} ({}): points overflow", line.line_no, line.sku)))
}

/// Counts a sale of a member (or returns its recorded result); `None` when there is no member.
pub fn sale(config: &LoyaltyConfig, event_id: &str, sale: &Sale) -> Result<Option<Outcome>, PluginError> {
    let Some(member_id) = sale.member_id.clone() else {
        return Ok(None);
    };
    let order_key = records::order_key(&sale.order_id);
    let existing: Option<Order> = records::get(&order_key)?;
    if let Some(order) = &existing {
        if order.sale_event == event_id {
            return Ok(Some(Outcome {
                member: order.member.clone(),
                counted: order.sale.clone(),
            }));
        }
        // The same order sent again under a new event id: it earned once already.
        host::warn(&format!(
            "order {} was already counted as event {}; this one earns nothing",
            sale.order_id, order.sale_event
        ));
        let member: Member = records::get(&records::member_key(&member_id))?.unwrap_or_default();
        let tier = config.tier_at(lifetime(config, &member)).name.clone();
        return Ok(Some(Outcome {
            member: member_id,
            counted: Counted {
                event: event_id.to_owned(),
                points: 0,
                balance: member.balance,
                tier: tier.clone(),
                previous_tier: tier,
            },
        }));
    }
    let member_key = records::member_key(&member_id);
    let mut member: Member = records::get(&member_key)?.unwrap_or_default();
    let (counted, earned) = match member.counted(event_id).cloned() {
        // Counted, but the order was not written: finish it with the tier it was earned at.
        Some(counted) => {
            let tier_percent = config
                .tiers
                .iter()
                .find(|t| t.name == counted.previous_tier)
                .map_or(100, |t| t.multiplier_percent);
            let earned = earning(config, sale, tier_percent)?;
            (counted, earned)
        }
        None => {
            let before = config.tier_at(lifetime(config, &member));
            let earned = earning(config, sale, before.multiplier_percent)?;
            let points = earned.points();
            member.balance += points;
            member.lifetime_points += points;
            member.lifetime_spend += earned.spend();
            let counted = Counted {
                event: event_id.to_owned(),
                points,
                balance: member.balance,
                tier: config.tier_at(lifetime(config, &member)).name.clone(),
                previous_tier: before.name.clone(),
            };
            member.remember(counted.clone(), config.remember_events);
            let pruned = keep_orders(config, &mut member, &sale.order_id, &sale.business_date);
            records::put(&member_key, &member)?;
            for order in pruned {
                records::delete(&records::order_key(&order))?;
            }
            (counted, earned)
        }
    };
    let order = Order {
        member: member_id.clone(),
        sale_event: event_id.to_owned(),
        business_date: sale.business_date.clone(),
        den: earned.den,
        lines: earned.lines,
        sale: counted.clone(),
        reversals: Vec::new(),
    };
    records::put(&order_key, &order)?;
    Ok(Some(Outcome {
        member: member_id,
        counted,
    }))
}

/// Adds an order to the member's list and drops orders past the refund window or beyond the
/// per-member bound; returns the dropped order ids (their records are deleted by the caller).
fn keep_orders(config: &LoyaltyConfig, member: &mut Member, order: &str, date: &str) -> Vec<String> {
    member.orders.retain(|(o, _)| o != order);
    member.orders.push((order.to_owned(), date.to_owned()));
    let today = day_number(date);
    let mut dropped = Vec::new();
    member.orders.retain(|(o, d)| {
        let expired = match (today, day_number(d)) {
            (Some(today), Some(day)) => today - day > config.refund_window_days,
            _ => false,
        };
        if expired {
            dropped.push(o.clone());
        }
        !expired
    });
    let excess = member.orders.len().saturating_sub(config.max_orders_per_member.max(1));
    dropped.extend(member.orders.drain(..excess).map(|(o, _)| o));
    dropped
}

/// Counts a refund against its order; `None` when neither the refund nor a recorded order names
/// a member.
pub fn refund(config: &LoyaltyConfig, event_id: &str, refund: &Refund) -> Result<Option<Outcome>, PluginError> {
    let returned: Vec<(Option<u32>, &str, i64)> = refund
        .lines
        .iter()
        .map(|l| {
            (
                l.original_line_no,
                l.line.sku.as_str(),
                l.line.quantity_milli.saturating_abs(),
            )
        })
        .collect();
    reverse(
        config,
        event_id,
        &refund.original_order_id,
        refund.member_id.as_deref(),
        |order| {
            for (line_no, sku, quantity) in &returned {
                let target = match line_no {
                    Some(n) => order.lines.iter_mut().find(|l| l.line_no == *n),
                    None => order
                        .lines
                        .iter_mut()
                        .find(|l| l.sku == *sku && l.refunded_milli < l.quantity_milli),
                };
                match target {
                    Some(line) => line.refunded_milli = (line.refunded_milli + quantity).min(line.quantity_milli),
                    None => host::warn(&format!(
                        "refunded line {sku} is not on the original order; it reverses nothing"
                    )),
                }
            }
        },
    )
}

/// Counts a void: everything the order still stands at is taken back.
pub fn void(config: &LoyaltyConfig, event_id: &str, order_id: &str) -> Result<Option<Outcome>, PluginError> {
    reverse(config, event_id, order_id, None, |order| {
        for line in &mut order.lines {
            line.refunded_milli = line.quantity_milli;
        }
    })
}

/// Applies `take_back` to the order's refunded quantities and takes the difference in standing
/// points off the member (or returns the recorded result of an event counted before).
fn reverse(
    config: &LoyaltyConfig,
    event_id: &str,
    order_id: &str,
    member_hint: Option<&str>,
    take_back: impl FnOnce(&mut Order),
) -> Result<Option<Outcome>, PluginError> {
    let order_key = records::order_key(order_id);
    let Some(mut order) = records::get::<Order>(&order_key)? else {
        // No record: not a member sale, or older than the refund window. Nothing to take back.
        let Some(member_id) = member_hint else {
            return Ok(None);
        };
        host::info(&format!("order {order_id} has no loyalty record; nothing to reverse"));
        let member: Member = records::get(&records::member_key(member_id))?.unwrap_or_default();
        let tier = config.tier_at(lifetime(config, &member)).name.clone();
        return Ok(Some(Outcome {
            member: member_id.to_owned(),
            counted: Counted {
                event: event_id.to_owned(),
                points: 0,
                balance: member.balance,
                tier: tier.clone(),
                previous_tier: tier,
            },
        }));
    };
    if let Some(counted) = order.reversal(event_id) {
        return Ok(Some(Outcome {
            member: order.member.clone(),
            counted: counted.clone(),
        }));
    }
    let member_key = records::member_key(&order.member);
    let mut member: Member = records::get(&member_key)?.unwrap_or_default();
    let points_before = order.standing_points();
    let spend_before = order.standing_spend();
    take_back(&mut order);
    let points = order.standing_points() - points_before;
    let spend = order.standing_spend() - spend_before;
    let counted = match member.counted(event_id).cloned() {
        Some(counted) => counted,
        None => {
            let before = config.tier_at(lifetime(config, &member)).name.clone();
            member.balance += points;
            member.lifetime_points += points;
            member.lifetime_spend += spend;
            let counted = Counted {
                event: event_id.to_owned(),
                points,
                balance: member.balance,
                tier: config.tier_at(lifetime(config, &member)).name.clone(),
                previous_tier: before,
            };
            member.remember(counted.clone(), config.remember_events);
            records::put(&member_key, &member)?;
            counted
        }
    };
    order.remember(counted.clone());
    records::put(&order_key, &order)?;
    Ok(Some(Outcome {
        member: order.member,
        counted,
    }))
}
