"""Chaos test, exactly-once mode (processing.guarantee = "exactly_once"): the same run as
test_chaos_alo_broker.py, and a read_committed reader of the results and dead letters must see
no duplicate at all. Skipped (exit 77) while the worker does not accept the key. See chaos.py."""
import pytest

import chaos


def test_no_duplicate_under_chaos_exactly_once(procs):
    args = chaos.parse_args(["--mode", "exactly_once", "--seed", "2"])
    why = chaos.mode_supported(args.mode)
    if why:
        pytest.skip("delivery-worker check-config rejects processing.guarantee:\n%s" % why)
    chaos.announce(args)
    chaos.chaos(procs, args)
