COPY requirements.lock /envbuild/requirements.lock
COPY wheels/ /envbuild/wheels/
RUN python${python} -m venv /envbuild/pip \
 && python${python} -m venv --without-pip ${venv} \
 && /envbuild/pip/bin/pip --python ${venv}/bin/python install --no-index --find-links /envbuild/wheels \
        --require-hashes --no-deps -r /envbuild/requirements.lock
COPY zz-envbuild.pth ${venv}/lib/python${python}/site-packages/zz-envbuild.pth
