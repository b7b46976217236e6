"""The broker the broker tests share (ctest's kafka.start and kafka.stop, a fixture pair):

  shared_broker.py start DIR   stop what a previous run left in DIR, start a fresh broker with
                               its data in DIR/kafka, write its address to DIR/bootstrap
  shared_broker.py stop DIR    stop it and remove DIR/kafka and DIR/bootstrap

The tests read the address through the file DW_SHARED_BROKER_FILE names (conftest.py)."""
import os
import subprocess
import sys

import harness as h


def stop(directory):
    subprocess.run([os.path.join(h.SRC, "tests/kafka/kafka.sh"), "stop", "--dir",
                    os.path.join(directory, "kafka")], capture_output=True, timeout=120)
    try:
        os.remove(os.path.join(directory, "bootstrap"))
    except FileNotFoundError:
        pass


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        sys.exit("usage: shared_broker.py start|stop DIR")
    directory = os.path.abspath(argv[2])
    stop(directory)
    if argv[1] == "start":
        os.makedirs(directory, exist_ok=True)
        kafka = h.RealKafka(None, directory=os.path.join(directory, "kafka"))
        with open(os.path.join(directory, "bootstrap"), "w") as f:
            f.write(kafka.bootstrap + "\n")
        h.log("shared broker at %s" % kafka.bootstrap)


if __name__ == "__main__":
    main(sys.argv)
