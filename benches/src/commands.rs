//! What Redis did during a drain, from its own command statistics (`INFO commandstats`, reset
//! with `CONFIG RESETSTAT` before the drain): the commands that took the most time, per event.

use crate::Error;

/// One command's calls and time since the last reset.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CommandStat {
    pub(crate) name: String,
    pub(crate) calls: u64,
    pub(crate) usec: u64,
}

async fn connection(url: &str) -> Result<redis::aio::MultiplexedConnection, Error> {
    Ok(redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?)
}

/// Zeroes Redis's command statistics.
pub(crate) async fn reset(url: &str) -> Result<(), Error> {
    let mut redis = connection(url).await?;
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async::<()>(&mut redis)
        .await?;
    Ok(())
}

/// Redis's command statistics since the last reset, the most time first.
pub(crate) async fn read(url: &str) -> Result<Vec<CommandStat>, Error> {
    let mut redis = connection(url).await?;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut redis)
        .await?;
    Ok(parse(&info))
}

/// `cmdstat_<name>:calls=<n>,usec=<n>,...` lines, the most time first; the harness's own
/// reset is left out.
fn parse(info: &str) -> Vec<CommandStat> {
    let mut stats: Vec<CommandStat> = info
        .lines()
        .filter_map(|line| {
            let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            if name == "config|resetstat" {
                return None;
            }
            let field = |key: &str| {
                fields
                    .split(',')
                    .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
            };
            Some(CommandStat {
                name: name.to_owned(),
                calls: field("calls")?,
                usec: field("usec")?,
            })
        })
        .collect();
    stats.sort_by(|a, b| b.usec.cmp(&a.usec).then_with(|| a.name.cmp(&b.name)));
    stats
}

/// The `top` commands by time, per event of `events`: "evalsha 0.36 calls 19.6 µs, ...".
/// A script's time includes the commands it calls, which are also counted on their own.
pub(crate) fn per_event(stats: &[CommandStat], events: u64, top: usize) -> String {
    let n = events.max(1) as f64;
    stats
        .iter()
        .take(top)
        .map(|s| {
            format!(
                "{} {:.2} calls {:.1} µs",
                s.name,
                s.calls as f64 / n,
                s.usec as f64 / n
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_from_info_and_ranked_by_time_per_event() {
        let info = "# Commandstats\r\n\
            cmdstat_get:calls=10,usec=20,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_evalsha:calls=4,usec=400,usec_per_call=100.00,rejected_calls=0,failed_calls=1\r\n\
            cmdstat_script|load:calls=1,usec=35,usec_per_call=35.00,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_config|resetstat:calls=1,usec=90,usec_per_call=90.00,rejected_calls=0,failed_calls=0\r\n\
            not a stat line\r\n";
        let stats = parse(info);
        let names: Vec<&str> = stats.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["evalsha", "script|load", "get"]);
        assert_eq!(stats[0].calls, 4);
        assert_eq!(
            per_event(&stats, 2, 2),
            "evalsha 2.00 calls 200.0 µs, script|load 0.50 calls 17.5 µs"
        );
    }
}
