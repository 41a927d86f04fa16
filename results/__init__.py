"""Results: Parquet and W&B logging, search-efficiency analysis and plots."""
