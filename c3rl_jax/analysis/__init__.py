"""What is done with a trained run: its policies loaded and evaluated (`policy`,
`evaluation`), a new environment placed among its mechanisms (`transfer`), figures (`plotting`)
and pictures of episodes (`render`). Empty of imports, so that each loads only what it needs.
"""
