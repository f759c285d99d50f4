"""spark-submit entry: the train stage. Usage: spark-submit ... jobs/reco_train.py --env cluster --as-of YYYY-MM-DD"""

import sys

from o2o.cli import job_main

if __name__ == "__main__":
    sys.exit(job_main("train"))
