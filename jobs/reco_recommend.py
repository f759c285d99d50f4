"""spark-submit entry: the recommend stage. Usage: spark-submit ... jobs/reco_recommend.py --env cluster --as-of YYYY-MM-DD"""

import sys

from o2o.cli import job_main

if __name__ == "__main__":
    sys.exit(job_main("recommend"))
