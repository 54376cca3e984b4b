-- 0011 is issue 28's migration (uploads, branch h-pictures). This placeholder only keeps the numbers without a
-- gap on a branch made before it: when h-pictures is merged, its 0011_uploads.sql replaces this file whole.
SELECT 1;
