"""modelops-reactor: model lifecycle automation for MLflow/Databricks and Azure ML."""

__version__ = "0.1.0"
