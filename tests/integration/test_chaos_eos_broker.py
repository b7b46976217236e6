"""Chaos test, exactly-once mode (processing.guarantee = "exactly_once"): the same run as
test_chaos_alo_broker.py, and a read_committed reader of the results and dead letters must see
no duplicate at all. Skipped (exit 77) while the worker does not accept the key. See chaos.py."""
import chaos

chaos.main(["--mode", "exactly_once", "--seed", "2"])
