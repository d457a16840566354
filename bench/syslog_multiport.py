"""multiport_syslogtcp throughput: ``bench/syslog.py --multiport`` (the same client, messages
and baseline as the syslogtcp row) as a row of its own in ``make bench``.

    python bench/syslog_multiport.py [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.syslog import main

if __name__ == "__main__":
    sys.argv.append("--multiport")
    main()
