"""Jobs shipped to run elsewhere (Databricks, local Spark). Entry scripts import nothing from here."""
