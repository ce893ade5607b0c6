"""Meta Marketing API ingestion: ad insights per day and ad, pixel events per hour."""
