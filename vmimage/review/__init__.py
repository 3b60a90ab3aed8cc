"""What a reviewer sees before anything is uploaded: lint, the preview summary, governance rules, the deletion guard."""
