"""Reports: evaluation results set against the papers' numbers (markdown, PNG charts, W&B tables)."""
