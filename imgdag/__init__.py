"""imgdag: raw image-dataset archives to framework formats, training and evaluation, as one DAG."""
