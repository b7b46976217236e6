"""Chaos test, at-least-once mode (the default), at CI size: 20,000 records (5,000 under the
sanitizers) through three workers on a real Kafka 3.9 broker while workers are SIGKILLed and
restarted, the group scales 1 -> 3 -> 1, the broker restarts and the API fails in every way.
Nothing may be lost; duplicates are counted and reported. See chaos.py."""
import chaos


def test_nothing_lost_under_chaos_at_least_once(procs):
    args = chaos.parse_args(["--mode", "at_least_once", "--seed", "1"])
    chaos.announce(args)
    chaos.chaos(procs, args)
