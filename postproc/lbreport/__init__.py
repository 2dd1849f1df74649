"""lbreport: request-lifecycle reports for load-balanced web farms.

Data flows one way: tshark + plugins/lblab.lua → PDML → packet records (pdml.py)
→ requests (lifecycle.py builds model.py's Report) → a renderer (render/).
"""

__version__ = "0.1.0"
SCHEMA = "lbreport/1"
