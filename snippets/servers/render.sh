python render_matrix.py
