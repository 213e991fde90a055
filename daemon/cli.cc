// CLI commands (placeholder)
