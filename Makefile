# Shortcuts; each target is one script under scripts/.
.PHONY: setup sample test zip qgis340
setup:
	bash scripts/setup.sh
sample:
	bash scripts/setup.sh && bash scripts/run_sample.sh
test:
	bash scripts/test.sh
zip:
	bash scripts/build_zip.sh
qgis340:
	bash scripts/qgis340.sh
