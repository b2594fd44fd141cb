"""The renderers: every picture, drawn once as PNG bytes (`figures`), and what is shown from them:
report.html and the terminal tables (`report`). They draw what they are handed; nothing here computes
a statistic."""
