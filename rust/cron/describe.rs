//! Plain-English descriptions of cron expressions.
