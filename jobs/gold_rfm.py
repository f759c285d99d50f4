"""spark-submit entry: the gold stage. Usage: spark-submit ... jobs/gold_rfm.py --env cluster --as-of YYYY-MM-DD"""

import sys

from o2o.cli import job_main

if __name__ == "__main__":
    sys.exit(job_main("gold"))
