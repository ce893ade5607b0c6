"""GA4 Data API ingestion: the sessions and leads reports, one day per partition."""
