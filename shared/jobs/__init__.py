"""Code shipped to run elsewhere (Databricks, local Spark, an Azure ML container). Each script imports
nothing from this repository."""
